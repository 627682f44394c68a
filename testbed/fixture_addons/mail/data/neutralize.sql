-- testbed: mail's neutralization, in our own words.
-- No incoming mail.
UPDATE fetchmail_server SET active = false WHERE active;
-- Templates fall back to the (neutralized) default server.
UPDATE mail_template SET mail_server_id = NULL WHERE mail_server_id IS NOT NULL;
-- Web push keys belong to production.
DELETE FROM ir_config_parameter
 WHERE key IN ('mail.web_push_vapid_private_key', 'mail.web_push_vapid_public_key');
