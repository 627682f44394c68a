# Fake module for the numikube testbed: its data/anonymize.sql forgets a
# column that quotes a customer, so an anonymized copy must fail.
{
    'name': 'Leaky notes (testbed module)',
    'version': '18.0.1.0',
    'depends': ['base'],
    'license': 'LGPL-3',
    'installable': True,
}
