//! The built-in set: which columns of which tables are masked, and how,
//! for the Odoo modules installed (a table or column that does not exist is
//! skipped, so one list serves every database). One set-based `UPDATE` per
//! table; every row, id and relation stays.

/// How a column is masked (the function of [`super::functions`] it goes through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// Addresses, one by one, each to `<hex>@example.com`.
    Email,
    /// Digits from the hash, same count, leading `+` kept.
    Phone,
    /// `Person <hex>`, each part of `Parent, Child` on its own.
    Name,
    /// `<n> Street <hex>`.
    Street,
    /// `City <hex>`.
    City,
    /// Digits for digits, letters for letters, the rest kept (zip codes, identity numbers).
    Code,
    /// As [`Mask::Code`], the two-letter country prefix kept (VAT numbers, IBANs).
    Vat,
    /// `https://<hex>.example.com`.
    Website,
    /// Free text, replaced whole.
    Text,
    /// Free HTML, replaced whole.
    Html,
    /// A password hash: emptied (NULL), so that nobody logs in with production's password.
    Password,
    /// A date (a birthday): another day of the same year, drawn from the hash.
    Date,
}

impl Mask {
    /// The SQL of the masked value of `value` (a text expression).
    pub fn sql(self, value: &str) -> String {
        let function = match self {
            Mask::Email => "anonymize_email",
            Mask::Phone => "anonymize_phone",
            Mask::Name => "anonymize_name",
            Mask::Street => "anonymize_street",
            Mask::City => "anonymize_city",
            Mask::Code => "anonymize_code",
            Mask::Vat => "anonymize_vat",
            Mask::Website => "anonymize_website",
            Mask::Text => "anonymize_text",
            Mask::Html => "anonymize_html",
            Mask::Date => "anonymize_date",
            Mask::Password => return "NULL".into(),
        };
        format!("pg_temp.{function}({value})")
    }
}

/// Which rows of a table are masked (or read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every row.
    All,
    /// Rows whose `column` (a partner) is not a kept partner (a company's, an internal user's).
    NotKept(&'static str),
    /// Rows whose `column` is a kept partner.
    Kept(&'static str),
    /// Portal and public users (`share`), never internal ones.
    Shared,
    /// Internal users (`share` false).
    Internal,
}

/// The temporary table of the kept partners' ids.
pub const KEPT_PARTNERS: &str = "pg_temp.numikube_kept_partners";

impl Rows {
    /// Whether the masking rewrites (nearly) every row: every row, or all
    /// but the few partners of the companies and internal users.
    pub fn nearly_all(self) -> bool {
        matches!(self, Rows::All | Rows::NotKept("id"))
    }

    /// The SQL condition on row `x`; `has_share`: whether `x` has a `share` column.
    pub fn sql(self, has_share: bool) -> String {
        match self {
            Rows::All => "true".into(),
            Rows::NotKept(column) => format!("NOT EXISTS (SELECT 1 FROM {KEPT_PARTNERS} AS k WHERE k.id = x.{column})"),
            Rows::Kept(column) => format!("EXISTS (SELECT 1 FROM {KEPT_PARTNERS} AS k WHERE k.id = x.{column})"),
            // Without `share`, every user counts as internal: none is masked.
            Rows::Shared if has_share => "x.share IS TRUE".into(),
            Rows::Shared => "false".into(),
            Rows::Internal if has_share => "x.share IS NOT TRUE".into(),
            Rows::Internal => "true".into(),
        }
    }
}

/// One table of the built-in set.
pub struct Table {
    /// The table.
    pub name: &'static str,
    /// Which rows.
    pub rows: Rows,
    /// The columns masked, where they exist.
    pub columns: &'static [(&'static str, Mask)],
}

use Mask::*;

/// The built-in set, in the order it runs.
pub const TABLES: &[Table] = &[
    Table {
        name: "res_partner",
        rows: Rows::NotKept("id"),
        columns: &[
            ("name", Name),
            ("complete_name", Name),
            ("display_name", Name),
            ("commercial_company_name", Name),
            ("company_name", Name),
            ("email", Email),
            ("email_normalized", Email),
            ("phone", Phone),
            ("mobile", Phone),
            ("phone_sanitized", Phone),
            ("street", Street),
            ("street2", Street),
            ("zip", Code),
            ("city", City),
            ("contact_address_complete", Street),
            ("vat", Vat),
            ("company_registry", Code),
            ("website", Website),
            ("comment", Html),
        ],
    },
    Table {
        name: "res_partner_bank",
        rows: Rows::NotKept("partner_id"),
        columns: &[("acc_number", Vat), ("sanitized_acc_number", Vat), ("acc_holder_name", Name)],
    },
    // Portal users: their login is their e-mail (masked as the partner's is), no password.
    Table { name: "res_users", rows: Rows::Shared, columns: &[("password", Password), ("signature", Html)] },
    Table {
        name: "mail_message",
        rows: Rows::All,
        columns: &[("body", Html), ("subject", Text), ("email_from", Email), ("reply_to", Email), ("record_name", Name)],
    },
    Table {
        name: "mail_mail",
        rows: Rows::All,
        // A bounce's `failure_reason` quotes the recipient's address.
        columns: &[
            ("body_html", Html),
            ("email_to", Email),
            ("email_cc", Email),
            ("reply_to", Email),
            ("headers", Text),
            ("failure_reason", Text),
        ],
    },
    Table {
        name: "mail_tracking_value",
        rows: Rows::All,
        columns: &[("old_value_char", Text), ("new_value_char", Text), ("old_value_text", Text), ("new_value_text", Text)],
    },
    Table { name: "mail_blacklist", rows: Rows::All, columns: &[("email", Email)] },
    Table {
        name: "hr_employee",
        rows: Rows::All,
        columns: &[
            ("private_email", Email),
            ("private_phone", Phone),
            ("private_street", Street),
            ("private_street2", Street),
            ("private_city", City),
            ("private_zip", Code),
            ("ssnid", Code),
            ("sinid", Code),
            ("passport_id", Code),
            ("identification_id", Code),
            ("permit_no", Code),
            ("visa_no", Code),
            ("private_car_plate", Code),
            ("emergency_contact", Name),
            ("emergency_phone", Phone),
            ("spouse_complete_name", Name),
            ("place_of_birth", City),
            ("birthday", Date),
            ("spouse_birthdate", Date),
            ("study_field", Text),
            ("study_school", Text),
            ("additional_note", Text),
            ("notes", Text),
            ("departure_description", Html),
        ],
    },
    Table {
        name: "crm_lead",
        rows: Rows::All,
        columns: &[
            ("contact_name", Name),
            ("partner_name", Name),
            ("email_from", Email),
            ("email_cc", Email),
            ("email_normalized", Email),
            ("phone", Phone),
            ("mobile", Phone),
            ("phone_sanitized", Phone),
            ("street", Street),
            ("street2", Street),
            ("city", City),
            ("zip", Code),
            ("website", Website),
            ("description", Html),
        ],
    },
];

/// Where the e-mails and phones of the masked people are read before masking
/// (to check afterwards that none is left): table, which rows, column, kind.
pub const PEOPLE: &[(&str, Rows, &str, Kind)] = &[
    ("res_partner", Rows::NotKept("id"), "email", Kind::Email),
    ("res_partner", Rows::NotKept("id"), "email_normalized", Kind::Email),
    ("res_partner", Rows::NotKept("id"), "phone", Kind::Phone),
    ("res_partner", Rows::NotKept("id"), "mobile", Kind::Phone),
    ("res_partner", Rows::NotKept("id"), "phone_sanitized", Kind::Phone),
    ("res_users", Rows::Shared, "login", Kind::Email),
    ("crm_lead", Rows::All, "email_from", Kind::Email),
    ("crm_lead", Rows::All, "phone", Kind::Phone),
    ("crm_lead", Rows::All, "mobile", Kind::Phone),
    ("hr_employee", Rows::All, "private_email", Kind::Email),
    ("hr_employee", Rows::All, "private_phone", Kind::Phone),
    ("hr_employee", Rows::All, "emergency_phone", Kind::Phone),
];

/// The e-mails and phones of the people kept (a company's, an internal
/// user's): they stay in the copy, so they are not looked for afterwards.
pub const KEPT: &[(&str, Rows, &str, Kind)] = &[
    ("res_partner", Rows::Kept("id"), "email", Kind::Email),
    ("res_partner", Rows::Kept("id"), "email_normalized", Kind::Email),
    ("res_partner", Rows::Kept("id"), "phone", Kind::Phone),
    ("res_partner", Rows::Kept("id"), "mobile", Kind::Phone),
    ("res_partner", Rows::Kept("id"), "phone_sanitized", Kind::Phone),
    ("res_users", Rows::Internal, "login", Kind::Email),
    ("res_company", Rows::All, "email", Kind::Email),
    ("res_company", Rows::All, "phone", Kind::Phone),
];

/// What a collected value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An e-mail address, lower case.
    Email,
    /// A phone number's digits (six or more).
    Phone,
}
