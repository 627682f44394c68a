-- testbed module payment_x: no real payments from a staging copy.
UPDATE payment_provider
   SET state = 'disabled'
 WHERE state NOT IN ('test', 'disabled');
