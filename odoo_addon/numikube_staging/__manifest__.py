# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
{
    "name": "Numikube Staging",
    "summary": "Let production users ask for staging databases, built by the "
    "numikube-staging sidecar",
    "version": "18.0.1.1.0",
    "category": "Administration",
    "website": "https://github.com/Numigi/numikube-staging",
    "author": "Numigi",
    "maintainers": ["numigi"],
    "license": "LGPL-3",
    "depends": ["mail"],
    "external_dependencies": {"python": ["requests"]},
    "data": [
        "security/staging_security.xml",
        "security/ir.model.access.csv",
        "data/mail_template_data.xml",
        "views/staging_environment_views.xml",
        "views/staging_job_views.xml",
        "views/menus.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "numikube_staging/static/src/js/staging_form.js",
        ],
    },
    "installable": True,
}
