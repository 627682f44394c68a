-- Odoo's small tables: company, users, crons, mail and fetchmail servers,
-- configuration parameters, payment providers, journals, accounts.
-- Runs after the caller inserted the ir_module_module rows.
SET client_min_messages = warning;

INSERT INTO res_currency (id, name, symbol, rounding, decimal_places, active, create_date, write_date) VALUES
  (1, 'EUR', '€', 0.01, 2, true, now(), now()),
  (2, 'USD', '$', 0.01, 2, true, now(), now());
INSERT INTO res_country (id, code, name, create_date, write_date) VALUES
  (1, 'BE', '{"en_US": "Belgium", "fr_BE": "Belgique"}', now(), now()),
  (2, 'FR', '{"en_US": "France"}', now(), now()),
  (3, 'US', '{"en_US": "United States"}', now(), now());
INSERT INTO res_partner (id, company_id, create_date, name, complete_name, type, email, is_company, active,
                         customer_rank, supplier_rank, country_id, lang, tz, write_date) VALUES
  (1, 1, now(), 'Numikube Production SA', 'Numikube Production SA', 'contact', 'info@example.com', true, true, 0, 0, 1, 'en_US', 'Europe/Brussels', now()),
  (2, 1, now(), 'Mitchell Admin', 'Numikube Production SA, Mitchell Admin', 'contact', 'admin@example.com', false, true, 0, 0, 1, 'en_US', 'Europe/Brussels', now()),
  (3, 1, now(), 'OdooBot', 'OdooBot', 'contact', 'odoobot@example.com', false, false, 0, 0, NULL, 'en_US', 'UTC', now());
UPDATE res_partner SET parent_id = 1 WHERE id = 2;
INSERT INTO res_company (id, name, partner_id, currency_id, email, phone, create_date, write_date) VALUES
  (1, 'Numikube Production SA', 1, 1, 'info@example.com', '+32 2 000 00 00', now(), now());
INSERT INTO res_users (id, company_id, partner_id, active, create_date, login, password, signature, share, notification_type, write_date) VALUES
  (1, 1, 3, false, now(), '__system__', NULL, NULL, false, 'inbox', now()),
  (2, 1, 2, true, now(), 'admin', '$pbkdf2-sha512$600000$fixture$notarealhash', '{"en_US": "<span>-- <br/>Mitchell Admin</span>"}', false, 'email', now()),
  (3, 1, 2, true, now(), 'accountant@example.com', '$pbkdf2-sha512$600000$fixture$notarealhash2', NULL, false, 'email', now()),
  (4, 1, 4, true, now(), 'portal@example.com', NULL, NULL, true, 'email', now());

-- Server actions behind the crons, and one webhook action.
INSERT INTO ir_act_server (id, name, type, usage, binding_type, model_name, state, code, webhook_url, sequence, create_date, write_date) VALUES
  (1, '{"en_US": "Base: Auto-vacuum internal data"}', 'ir.actions.server', 'ir_cron', 'action', 'ir.autovacuum', 'code', 'model._run_vacuum_cleaner()', NULL, 5, now(), now()),
  (2, '{"en_US": "Mail: Email Queue Manager"}', 'ir.actions.server', 'ir_cron', 'action', 'mail.mail', 'code', 'model.process_email_queue()', NULL, 5, now(), now()),
  (3, '{"en_US": "Mail: Fetchmail Service"}', 'ir.actions.server', 'ir_cron', 'action', 'fetchmail.server', 'code', 'model._fetch_mails()', NULL, 5, now(), now()),
  (4, '{"en_US": "Account: Post draft entries with auto_post enabled"}', 'ir.actions.server', 'ir_cron', 'action', 'account.move', 'code', 'model._autopost_draft_entries()', NULL, 5, now(), now()),
  (5, '{"en_US": "Publisher: Update Notification"}', 'ir.actions.server', 'ir_cron', 'action', 'publisher_warranty.contract', 'code', 'model.update_notification(None)', NULL, 5, now(), now()),
  (6, '{"en_US": "Base: Portal Users Deletion"}', 'ir.actions.server', 'ir_cron', 'action', 'res.users.deletion', 'code', 'model._gc_portal_users()', NULL, 5, now(), now()),
  (7, '{"en_US": "Notify the ERP integrator"}', 'ir.actions.server', 'ir_actions_server', 'action', 'account.move', 'webhook', NULL, 'https://hooks.example.com/production/invoice', 5, now(), now());
INSERT INTO ir_cron (id, ir_actions_server_id, user_id, cron_name, active, interval_number, interval_type,
                     nextcall, lastcall, priority, failure_count, create_date, write_date) VALUES
  (1, 1, 1, 'Base: Auto-vacuum internal data', true, 1, 'days', now() + interval '1 day', now(), 5, 0, now(), now()),
  (2, 2, 1, 'Mail: Email Queue Manager', true, 1, 'hours', now() + interval '1 hour', now(), 5, 0, now(), now()),
  (3, 3, 1, 'Mail: Fetchmail Service', true, 5, 'minutes', now() + interval '5 minutes', now(), 5, 0, now(), now()),
  (4, 4, 1, 'Account: Post draft entries with auto_post enabled', true, 1, 'days', now() + interval '1 day', now(), 5, 0, now(), now()),
  (5, 5, 1, 'Publisher: Update Notification', true, 1, 'weeks', now() + interval '7 days', now(), 5, 0, now(), now()),
  (6, 6, 1, 'Base: Portal Users Deletion', false, 1, 'days', now() + interval '1 day', NULL, 5, 0, now(), now());

INSERT INTO ir_mail_server (id, name, from_filter, smtp_host, smtp_port, smtp_authentication, smtp_user, smtp_pass,
                            smtp_encryption, smtp_debug, sequence, active, create_date, write_date) VALUES
  (1, 'Production SMTP', 'example.com', 'smtp.example.com', 587, 'login', 'odoo@example.com', 'production-smtp-password', 'starttls', false, 10, true, now(), now()),
  (2, 'Bulk mailing relay', NULL, 'relay.example.net', 465, 'login', 'bulk', 'relay-password', 'ssl', false, 20, true, now(), now()),
  (3, 'Old relay (archived)', NULL, 'old-relay.example.net', 25, 'login', NULL, NULL, 'none', false, 30, false, now(), now());
INSERT INTO fetchmail_server (id, name, active, state, server, port, server_type, is_ssl, attach, original,
                              date, "user", password, object_id, priority, create_date, write_date) VALUES
  (1, 'Support inbox', true, 'done', 'imap.example.com', 993, 'imap', true, true, false, now(), 'support@example.com', 'imap-password', NULL, 5, now(), now()),
  (2, 'Invoices inbox', true, 'done', 'imap.example.com', 993, 'imap', true, true, false, now(), 'invoices@example.com', 'imap-password', NULL, 5, now(), now()),
  (3, 'Legacy POP box', false, 'draft', 'pop.example.com', 995, 'pop', true, true, false, NULL, 'legacy@example.com', 'pop-password', NULL, 5, now(), now());
INSERT INTO mail_template (id, name, model, subject, email_from, mail_server_id, body_html, active, create_date, write_date) VALUES
  (1, '{"en_US": "Invoice: Sending"}', 'account.move', '{"en_US": "{{ object.company_id.name }} Invoice (Ref {{ object.name }})"}', '{{ user.email_formatted }}', 1, '{"en_US": "<p>Dear customer, here is your invoice.</p>"}', true, now(), now()),
  (2, '{"en_US": "Newsletter"}', 'res.partner', '{"en_US": "Our news"}', 'news@example.com', 2, '{"en_US": "<p>News</p>"}', true, now(), now());

INSERT INTO ir_config_parameter (key, value, create_date, write_date) VALUES
  ('database.uuid', gen_random_uuid()::text, now(), now()),
  ('database.secret', gen_random_uuid()::text, now(), now()),
  ('database.create_date', to_char(now() - interval '5 years', 'YYYY-MM-DD HH24:MI:SS'), now(), now()),
  ('database.enterprise_code', 'M' || to_char(now(), 'YYMMDD') || lpad((floor(random() * 1e6))::int::text, 6, '0'), now(), now()),
  ('database.expiration_date', to_char(now() + interval '1 year', 'YYYY-MM-DD HH24:MI:SS'), now(), now()),
  ('web.base.url', 'https://erp.example.com', now(), now()),
  ('report.url', 'https://erp.example.com', now(), now()),
  ('mail.catchall.domain', 'example.com', now(), now()),
  ('mail.web_push_vapid_private_key', 'fixture-vapid-private-key', now(), now()),
  ('mail.web_push_vapid_public_key', 'fixture-vapid-public-key', now(), now()),
  ('base.login_cooldown_duration', '60', now(), now());

INSERT INTO payment_provider (id, company_id, code, name, state, create_date, write_date) VALUES
  (1, 1, 'stripe', '{"en_US": "Stripe"}', 'enabled', now(), now()),
  (2, 1, 'custom', '{"en_US": "Wire Transfer"}', 'enabled', now(), now()),
  (3, 1, 'demo', '{"en_US": "Demo"}', 'test', now(), now()),
  (4, 1, 'paypal', '{"en_US": "PayPal"}', 'disabled', now(), now());
INSERT INTO account_journal (id, company_id, code, name, type, active, create_date, write_date) VALUES
  (1, 1, 'INV', '{"en_US": "Customer Invoices"}', 'sale', true, now(), now()),
  (2, 1, 'BILL', '{"en_US": "Vendor Bills"}', 'purchase', true, now(), now()),
  (3, 1, 'MISC', '{"en_US": "Miscellaneous Operations"}', 'general', true, now(), now());
INSERT INTO account_account (id, code_store, name, account_type, reconcile, active, create_date, write_date) VALUES
  (1, '{"1": "400000"}', '{"en_US": "Account Receivable"}', 'asset_receivable', true, true, now(), now()),
  (2, '{"1": "451000"}', '{"en_US": "VAT payable"}', 'liability_current', false, true, now(), now()),
  (3, '{"1": "700000"}', '{"en_US": "Product Sales"}', 'income', false, true, now(), now()),
  (4, '{"1": "700100"}', '{"en_US": "Service Sales"}', 'income', false, true, now(), now()),
  (5, '{"1": "600000"}', '{"en_US": "Purchases"}', 'expense', false, true, now(), now()),
  (6, '{"1": "610000"}', '{"en_US": "Services and other goods"}', 'expense', false, true, now(), now());

INSERT INTO ir_model_data (res_id, noupdate, name, module, model, create_date, write_date) VALUES
  (1, true, 'autovacuum_job', 'base', 'ir.cron', now(), now()),
  (2, true, 'ir_cron_mail_scheduler_action', 'mail', 'ir.cron', now(), now()),
  (3, true, 'ir_cron_mail_gateway_action', 'mail', 'ir.cron', now(), now()),
  (4, true, 'ir_cron_auto_post_draft_entry', 'account', 'ir.cron', now(), now()),
  (5, true, 'ir_cron_module_update_notification', 'mail', 'ir.cron', now(), now()),
  (6, true, 'ir_cron_res_users_deletion', 'base', 'ir.cron', now(), now()),
  (1, true, 'main_company', 'base', 'res.company', now(), now()),
  (1, true, 'main_partner', 'base', 'res.partner', now(), now()),
  (2, true, 'partner_admin', 'base', 'res.partner', now(), now()),
  (3, true, 'partner_root', 'base', 'res.partner', now(), now()),
  (1, true, 'user_root', 'base', 'res.users', now(), now()),
  (2, true, 'user_admin', 'base', 'res.users', now(), now()),
  (1, true, 'EUR', 'base', 'res.currency', now(), now()),
  (2, true, 'USD', 'base', 'res.currency', now(), now()),
  (1, true, 'be', 'base', 'res.country', now(), now()),
  (1, true, 'mail_template_data_invoice', 'account', 'mail.template', now(), now()),
  (1, true, 'payment_provider_stripe', 'payment_x', 'payment.provider', now(), now());
INSERT INTO ir_model_data (res_id, noupdate, name, module, model, create_date, write_date)
SELECT id, true, 'module_' || name, 'base', 'ir.module.module', now(), now() FROM ir_module_module;
