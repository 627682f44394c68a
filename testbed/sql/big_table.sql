-- The one-big-table shape (issue 23): beside the normal schema, one
-- message-like table holding most of the database, as production databases
-- grow: a serial primary key, a ≈150-character text body, two indexes and a
-- foreign key to res_partner. psql variables: :partners :big_rows.
SET client_min_messages = warning;
SET synchronous_commit = off;

CREATE TABLE mail_message_log (
    id serial NOT NULL,
    partner_id integer NOT NULL,
    date timestamp without time zone NOT NULL,
    body text
);

INSERT INTO mail_message_log (partner_id, date, body)
SELECT 4 + (i * 7) % :partners,
       timestamp '2021-01-01' + i * interval '7 seconds',
       substr('Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. '
           || 'Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. '
           || 'Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. ',
           1 + (i * 37) % 180, 118) || ' #' || md5(i::text)
  FROM generate_series(1, :big_rows) AS i;

ALTER TABLE mail_message_log ADD CONSTRAINT mail_message_log_pkey PRIMARY KEY (id);
CREATE INDEX mail_message_log_partner_id_index ON mail_message_log (partner_id);
CREATE INDEX mail_message_log_date_index ON mail_message_log (date);
ALTER TABLE mail_message_log ADD CONSTRAINT mail_message_log_partner_id_fkey
    FOREIGN KEY (partner_id) REFERENCES res_partner (id) ON DELETE CASCADE;
