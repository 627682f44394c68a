-- Secondary indexes, unique constraints and foreign keys, named the way
-- Odoo names them (<table>_<column>_index, <table>_<column>_fkey).
SET client_min_messages = warning;
SET maintenance_work_mem = '256MB';

CREATE UNIQUE INDEX ir_module_module_name_uniq ON ir_module_module (name);
CREATE INDEX ir_module_module_state_index ON ir_module_module (state);
CREATE UNIQUE INDEX ir_model_data_module_name_uniq_index ON ir_model_data (module, name);
CREATE INDEX ir_model_data_model_res_id_index ON ir_model_data (model, res_id);
CREATE UNIQUE INDEX res_users_login_key ON res_users (login);
CREATE INDEX res_partner_company_id_index ON res_partner (company_id);
CREATE INDEX res_partner_name_index ON res_partner (name);
CREATE INDEX res_partner_complete_name_index ON res_partner (complete_name);
CREATE INDEX res_partner_parent_id_index ON res_partner (parent_id);
CREATE INDEX res_partner_ref_index ON res_partner (ref);
CREATE INDEX res_partner_vat_index ON res_partner (vat);
CREATE INDEX mail_message_parent_id_index ON mail_message (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX mail_message_subtype_id_index ON mail_message (subtype_id);
CREATE INDEX mail_message_author_id_index ON mail_message (author_id);
CREATE INDEX mail_message_message_id_index ON mail_message (message_id);
CREATE INDEX mail_message_model_res_id_idx ON mail_message (model, res_id);
CREATE UNIQUE INDEX account_move_unique_name ON account_move (name, journal_id) WHERE state = 'posted' AND name <> '/';
CREATE INDEX account_move_journal_id_index ON account_move (journal_id);
CREATE INDEX account_move_partner_id_index ON account_move (partner_id) WHERE partner_id IS NOT NULL;
CREATE INDEX account_move_date_index ON account_move (date);
CREATE INDEX account_move_state_index ON account_move (state);
CREATE INDEX account_move_payment_reference_index ON account_move (payment_reference);
CREATE INDEX account_move_line_move_id_index ON account_move_line (move_id);
CREATE INDEX account_move_line_account_id_date_idx ON account_move_line (account_id, date);
CREATE INDEX account_move_line_partner_id_ref_idx ON account_move_line (partner_id, ref);
CREATE INDEX account_move_line_date_name_id_idx ON account_move_line (date DESC, move_name DESC, id);
CREATE INDEX account_move_line_journal_id_index ON account_move_line (journal_id);
CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id);
CREATE INDEX ir_attachment_store_fname_index ON ir_attachment (store_fname);
CREATE INDEX ir_attachment_checksum_index ON ir_attachment (checksum);
CREATE INDEX ir_attachment_url_index ON ir_attachment (url) WHERE url IS NOT NULL;

ALTER TABLE res_partner ADD CONSTRAINT res_partner_company_id_fkey FOREIGN KEY (company_id) REFERENCES res_company (id) ON DELETE SET NULL;
ALTER TABLE res_partner ADD CONSTRAINT res_partner_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES res_partner (id) ON DELETE SET NULL;
ALTER TABLE res_partner ADD CONSTRAINT res_partner_country_id_fkey FOREIGN KEY (country_id) REFERENCES res_country (id) ON DELETE RESTRICT;
ALTER TABLE res_company ADD CONSTRAINT res_company_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES res_partner (id) ON DELETE RESTRICT;
ALTER TABLE res_company ADD CONSTRAINT res_company_currency_id_fkey FOREIGN KEY (currency_id) REFERENCES res_currency (id) ON DELETE RESTRICT;
ALTER TABLE res_users ADD CONSTRAINT res_users_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES res_partner (id) ON DELETE RESTRICT;
ALTER TABLE res_users ADD CONSTRAINT res_users_company_id_fkey FOREIGN KEY (company_id) REFERENCES res_company (id) ON DELETE RESTRICT;
ALTER TABLE ir_cron ADD CONSTRAINT ir_cron_ir_actions_server_id_fkey FOREIGN KEY (ir_actions_server_id) REFERENCES ir_act_server (id) ON DELETE RESTRICT;
ALTER TABLE ir_cron ADD CONSTRAINT ir_cron_user_id_fkey FOREIGN KEY (user_id) REFERENCES res_users (id) ON DELETE RESTRICT;
ALTER TABLE mail_template ADD CONSTRAINT mail_template_mail_server_id_fkey FOREIGN KEY (mail_server_id) REFERENCES ir_mail_server (id) ON DELETE SET NULL;
ALTER TABLE payment_provider ADD CONSTRAINT payment_provider_company_id_fkey FOREIGN KEY (company_id) REFERENCES res_company (id) ON DELETE RESTRICT;
ALTER TABLE account_journal ADD CONSTRAINT account_journal_company_id_fkey FOREIGN KEY (company_id) REFERENCES res_company (id) ON DELETE RESTRICT;
ALTER TABLE mail_message ADD CONSTRAINT mail_message_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES mail_message (id) ON DELETE SET NULL;
ALTER TABLE mail_message ADD CONSTRAINT mail_message_author_id_fkey FOREIGN KEY (author_id) REFERENCES res_partner (id) ON DELETE SET NULL;
ALTER TABLE mail_message ADD CONSTRAINT mail_message_mail_server_id_fkey FOREIGN KEY (mail_server_id) REFERENCES ir_mail_server (id) ON DELETE SET NULL;
ALTER TABLE mail_message ADD CONSTRAINT mail_message_create_uid_fkey FOREIGN KEY (create_uid) REFERENCES res_users (id) ON DELETE SET NULL;
ALTER TABLE account_move ADD CONSTRAINT account_move_journal_id_fkey FOREIGN KEY (journal_id) REFERENCES account_journal (id) ON DELETE RESTRICT;
ALTER TABLE account_move ADD CONSTRAINT account_move_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES res_partner (id) ON DELETE RESTRICT;
ALTER TABLE account_move ADD CONSTRAINT account_move_company_id_fkey FOREIGN KEY (company_id) REFERENCES res_company (id) ON DELETE RESTRICT;
ALTER TABLE account_move ADD CONSTRAINT account_move_currency_id_fkey FOREIGN KEY (currency_id) REFERENCES res_currency (id) ON DELETE RESTRICT;
ALTER TABLE account_move_line ADD CONSTRAINT account_move_line_move_id_fkey FOREIGN KEY (move_id) REFERENCES account_move (id) ON DELETE CASCADE;
ALTER TABLE account_move_line ADD CONSTRAINT account_move_line_account_id_fkey FOREIGN KEY (account_id) REFERENCES account_account (id) ON DELETE RESTRICT;
ALTER TABLE account_move_line ADD CONSTRAINT account_move_line_partner_id_fkey FOREIGN KEY (partner_id) REFERENCES res_partner (id) ON DELETE RESTRICT;
ALTER TABLE account_move_line ADD CONSTRAINT account_move_line_journal_id_fkey FOREIGN KEY (journal_id) REFERENCES account_journal (id) ON DELETE RESTRICT;
ALTER TABLE account_move_line ADD CONSTRAINT account_move_line_currency_id_fkey FOREIGN KEY (currency_id) REFERENCES res_currency (id) ON DELETE RESTRICT;
ALTER TABLE ir_attachment ADD CONSTRAINT ir_attachment_company_id_fkey FOREIGN KEY (company_id) REFERENCES res_company (id) ON DELETE SET NULL;
ALTER TABLE ir_attachment ADD CONSTRAINT ir_attachment_original_id_fkey FOREIGN KEY (original_id) REFERENCES ir_attachment (id) ON DELETE SET NULL;

-- serial columns continue after the explicit ids used by the load
DO $$
DECLARE t text;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind = 'r' LOOP
    EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), greatest(coalesce(max(id), 0), 1)) FROM %I', t, t);
  END LOOP;
END $$;
