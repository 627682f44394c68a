-- testbed module x_loyalty: a card names its holder; masked with the
-- sidecar's own functions, so that the holder's masked name and e-mail are
-- the partner's.
UPDATE x_loyalty_card
   SET holder_name = pg_temp.anonymize_name(holder_name),
       holder_email = pg_temp.anonymize_email(holder_email),
       notes = 'masked by x_loyalty'
 WHERE holder_name IS NOT NULL OR holder_email IS NOT NULL;
