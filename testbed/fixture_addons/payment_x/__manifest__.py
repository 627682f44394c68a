# Fake module for the numikube testbed: only the manifest and data/neutralize.sql
# matter (the sidecar looks for <module>/data/neutralize.sql on addons_path).
{
    'name': 'Payment X (testbed module)',
    'version': '18.0.2.0',
    'depends': ['base'],
    'license': 'LGPL-3',
    'installable': True,
}
