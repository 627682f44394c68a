# Fake module for the numikube testbed: only the manifest and data/neutralize.sql
# matter (the sidecar looks for <module>/data/neutralize.sql on addons_path).
{
    'name': 'Website (testbed stand-in, uninstalled in the fixture)',
    'version': '18.0.1.0',
    'depends': ['web', 'mail'],
    'license': 'LGPL-3',
    'installable': True,
}
