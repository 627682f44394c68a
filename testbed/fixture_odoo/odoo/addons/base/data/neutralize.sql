-- testbed: what base's neutralization does, in our own words.
-- Stop every scheduled action except the autovacuum job.
UPDATE ir_cron
   SET active = false
 WHERE active
   AND id NOT IN (SELECT res_id FROM ir_model_data
                   WHERE module = 'base' AND name = 'autovacuum_job' AND model = 'ir.cron');

-- No outgoing mail through the production servers; a dummy server catches
-- whatever would fall back to the command line's SMTP settings.
UPDATE ir_mail_server SET active = false WHERE active;
INSERT INTO ir_mail_server (name, smtp_host, smtp_port, smtp_encryption, smtp_authentication, active)
VALUES ('neutralization - disable emails', 'invalid', 1025, 'none', 'login', true);

-- Webhooks must not reach production's partners.
UPDATE ir_act_server
   SET webhook_url = 'neutralization - disable webhook'
 WHERE state = 'webhook';

-- Flag the database (Odoo shows a banner on neutralized databases).
INSERT INTO ir_config_parameter (key, value) VALUES ('database.is_neutralized', 'True')
    ON CONFLICT (key) DO UPDATE SET value = 'True';
