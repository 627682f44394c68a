# Fake module for the numikube testbed: only the manifest and data/neutralize.sql
# matter (the sidecar looks for <module>/data/neutralize.sql on addons_path).
{
    'name': 'Discuss (testbed stand-in)',
    'version': '18.0.1.15',
    'depends': ['base', 'web'],
    'license': 'LGPL-3',
    'installable': True,
}
