# Fake module for the numikube testbed: only the manifest and data/neutralize.sql
# matter (the sidecar looks for <module>/data/neutralize.sql on addons_path).
{
    'name': 'Base (testbed stand-in)',
    'version': '18.0.1.3',
    'depends': [],
    'license': 'LGPL-3',
    'installable': True,
}
