-- A copy of production must not hold the staging tokens: whoever administers
-- the copy could otherwise drop databases on every staging server and forge
-- callbacks. Run by `odoo-bin neutralize` and by the numikube-staging sidecar.
UPDATE staging_environment
   SET token = NULL
 WHERE token IS NOT NULL;
