-- numikube testbed: an Odoo 18-shaped schema (our own, written for tests).
-- Column names follow Odoo's for the columns that matter to a restorer and
-- neutralizer; secondary indexes and foreign keys are added by
-- constraints.sql after the bulk load (that is much faster).
SET client_min_messages = warning;

CREATE TABLE res_currency (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    symbol varchar NOT NULL,
    rounding numeric,
    decimal_places integer,
    active boolean,
    create_date timestamp, write_date timestamp
);
CREATE TABLE res_country (
    id serial PRIMARY KEY,
    code varchar(2),
    name jsonb NOT NULL,
    create_date timestamp, write_date timestamp
);
CREATE TABLE res_company (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    partner_id integer NOT NULL,
    currency_id integer NOT NULL,
    email varchar, phone varchar,
    create_date timestamp, write_date timestamp
);
CREATE TABLE res_partner (
    id serial PRIMARY KEY,
    company_id integer,
    create_date timestamp,
    name varchar,
    complete_name varchar,
    parent_id integer,
    user_id integer,
    ref varchar,
    lang varchar,
    tz varchar,
    vat varchar,
    website varchar,
    comment text,
    type varchar,
    street varchar,
    street2 varchar,
    zip varchar,
    city varchar,
    country_id integer,
    email varchar,
    phone varchar,
    mobile varchar,
    is_company boolean,
    active boolean,
    customer_rank integer,
    supplier_rank integer,
    create_uid integer, write_uid integer, write_date timestamp
);
CREATE TABLE res_users (
    id serial PRIMARY KEY,
    company_id integer NOT NULL,
    partner_id integer NOT NULL,
    active boolean DEFAULT true,
    create_date timestamp,
    login varchar NOT NULL,
    password varchar,
    signature jsonb,
    share boolean,
    notification_type varchar NOT NULL,
    create_uid integer, write_uid integer, write_date timestamp
);
CREATE TABLE ir_module_module (
    id serial PRIMARY KEY,
    create_uid integer, create_date timestamp, write_uid integer, write_date timestamp,
    website varchar,
    summary jsonb,
    name varchar NOT NULL,
    author varchar,
    icon varchar,
    state varchar(16),
    latest_version varchar,
    shortdesc jsonb,
    category_id integer,
    description jsonb,
    application boolean,
    demo boolean,
    web boolean,
    license varchar(32),
    sequence integer,
    auto_install boolean,
    to_buy boolean,
    maintainer varchar,
    published_version varchar,
    url varchar
);
CREATE TABLE ir_model_data (
    id serial PRIMARY KEY,
    create_uid integer, create_date timestamp, write_date timestamp, write_uid integer,
    res_id integer,
    noupdate boolean,
    name varchar NOT NULL,
    module varchar NOT NULL,
    model varchar NOT NULL
);
CREATE TABLE ir_act_server (
    id serial PRIMARY KEY,
    name jsonb NOT NULL,
    type varchar NOT NULL,
    usage varchar NOT NULL,
    binding_type varchar NOT NULL,
    model_name varchar,
    state varchar NOT NULL,
    code text,
    webhook_url varchar,
    sequence integer,
    create_uid integer, create_date timestamp, write_uid integer, write_date timestamp
);
-- Odoo's ir.cron _inherits ir.actions.server: the name lives in
-- ir_act_server, ir_cron keeps a copy in cron_name.
CREATE TABLE ir_cron (
    id serial PRIMARY KEY,
    ir_actions_server_id integer NOT NULL,
    user_id integer NOT NULL,
    cron_name varchar,
    active boolean,
    interval_number integer NOT NULL,
    interval_type varchar NOT NULL,
    nextcall timestamp NOT NULL,
    lastcall timestamp,
    priority integer,
    failure_count integer,
    first_failure_date timestamp,
    create_uid integer, create_date timestamp, write_uid integer, write_date timestamp
);
CREATE TABLE ir_mail_server (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    from_filter varchar,
    smtp_host varchar,
    smtp_port integer,
    smtp_authentication varchar NOT NULL,
    smtp_user varchar,
    smtp_pass varchar,
    smtp_encryption varchar NOT NULL,
    smtp_debug boolean,
    sequence integer,
    active boolean,
    create_uid integer, create_date timestamp, write_uid integer, write_date timestamp
);
CREATE TABLE fetchmail_server (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    active boolean,
    state varchar,
    server varchar,
    port integer,
    server_type varchar NOT NULL,
    is_ssl boolean,
    attach boolean,
    original boolean,
    date timestamp,
    "user" varchar,
    password varchar,
    object_id integer,
    priority integer,
    create_uid integer, create_date timestamp, write_uid integer, write_date timestamp
);
CREATE TABLE ir_config_parameter (
    id serial PRIMARY KEY,
    key varchar NOT NULL,
    value text NOT NULL,
    create_uid integer, create_date timestamp, write_uid integer, write_date timestamp,
    CONSTRAINT ir_config_parameter_key_uniq UNIQUE (key)
);
CREATE TABLE mail_template (
    id serial PRIMARY KEY,
    name jsonb,
    model varchar,
    subject jsonb,
    email_from varchar,
    mail_server_id integer,
    body_html jsonb,
    active boolean,
    create_uid integer, create_date timestamp, write_uid integer, write_date timestamp
);
CREATE TABLE payment_provider (
    id serial PRIMARY KEY,
    company_id integer NOT NULL,
    code varchar NOT NULL,
    name jsonb NOT NULL,
    state varchar NOT NULL,
    create_uid integer, create_date timestamp, write_uid integer, write_date timestamp
);
CREATE TABLE account_journal (
    id serial PRIMARY KEY,
    company_id integer NOT NULL,
    code varchar(5) NOT NULL,
    name jsonb NOT NULL,
    type varchar NOT NULL,
    active boolean,
    create_date timestamp, write_date timestamp
);
CREATE TABLE account_account (
    id serial PRIMARY KEY,
    code_store jsonb,
    name jsonb NOT NULL,
    account_type varchar NOT NULL,
    reconcile boolean,
    active boolean,
    create_date timestamp, write_date timestamp
);
CREATE TABLE mail_message (
    id serial PRIMARY KEY,
    parent_id integer,
    res_id integer,
    record_company_id integer,
    subtype_id integer,
    author_id integer,
    mail_server_id integer,
    create_uid integer,
    write_uid integer,
    subject varchar,
    model varchar,
    record_name varchar,
    message_type varchar NOT NULL,
    email_from varchar,
    message_id varchar,
    reply_to varchar,
    body text,
    is_internal boolean,
    date timestamp,
    create_date timestamp,
    write_date timestamp
);
CREATE TABLE account_move (
    id serial PRIMARY KEY,
    journal_id integer NOT NULL,
    company_id integer,
    currency_id integer NOT NULL,
    partner_id integer,
    commercial_partner_id integer,
    create_uid integer, write_uid integer,
    sequence_prefix varchar,
    sequence_number integer,
    name varchar,
    ref varchar,
    state varchar NOT NULL,
    move_type varchar NOT NULL,
    payment_state varchar,
    payment_reference varchar,
    invoice_origin varchar,
    date date NOT NULL,
    invoice_date date,
    invoice_date_due date,
    amount_untaxed numeric,
    amount_tax numeric,
    amount_total numeric,
    amount_residual numeric,
    amount_total_signed numeric,
    narration jsonb,
    create_date timestamp,
    write_date timestamp
);
CREATE TABLE account_move_line (
    id serial PRIMARY KEY,
    move_id integer NOT NULL,
    journal_id integer,
    company_id integer,
    account_id integer,
    currency_id integer NOT NULL,
    partner_id integer,
    create_uid integer, write_uid integer,
    move_name varchar,
    parent_state varchar,
    ref varchar,
    name varchar,
    display_type varchar NOT NULL,
    date date,
    sequence integer,
    quantity numeric,
    price_unit numeric,
    price_subtotal numeric,
    price_total numeric,
    debit numeric,
    credit numeric,
    balance numeric,
    amount_currency numeric,
    amount_residual numeric,
    reconciled boolean,
    create_date timestamp,
    write_date timestamp
);
CREATE TABLE ir_attachment (
    id serial PRIMARY KEY,
    res_id integer,
    company_id integer,
    file_size integer,
    original_id integer,
    create_uid integer,
    write_uid integer,
    name varchar NOT NULL,
    res_model varchar,
    res_field varchar,
    type varchar NOT NULL,
    url varchar(1024),
    access_token varchar,
    store_fname varchar,
    checksum varchar(40),
    mimetype varchar,
    description text,
    index_content text,
    public boolean,
    db_datas bytea,
    create_date timestamp,
    write_date timestamp
);
