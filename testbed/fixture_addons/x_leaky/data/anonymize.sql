-- testbed module x_leaky: masks the title and forgets the body.
UPDATE x_leaky_note SET title = 'Masked';
