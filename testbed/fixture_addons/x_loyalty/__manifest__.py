# Fake module for the numikube testbed: a custom module whose table names
# its customers, and its data/anonymize.sql that masks them (the sidecar runs
# <module>/data/anonymize.sql of every installed module in an anonymized copy).
{
    'name': 'Loyalty cards (testbed module)',
    'version': '18.0.1.0',
    'depends': ['base'],
    'license': 'LGPL-3',
    'installable': True,
}
