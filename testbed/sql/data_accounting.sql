-- Bulk data, session 2 of 2: invoices, journal items and attachments.
-- psql variables: :partners :moves :lines_per_move :attachments :files.
-- The temporary table fixture_files (n, store_fname, checksum, file_size,
-- mimetype, name) has been filled by the caller (one row per filestore file).
SET client_min_messages = warning;
SET synchronous_commit = off;

INSERT INTO account_move (id, journal_id, company_id, currency_id, partner_id, commercial_partner_id,
       create_uid, write_uid, sequence_prefix, sequence_number, name, ref, state, move_type,
       payment_state, payment_reference, invoice_origin, date, invoice_date, invoice_date_due,
       amount_untaxed, amount_tax, amount_total, amount_residual, amount_total_signed,
       narration, create_date, write_date)
SELECT i, j, 1, 1, p, p, 2, 2,
       jc || '/' || y || '/', i, jc || '/' || y || '/' || lpad(i::text, 7, '0'),
       CASE WHEN i % 3 = 0 THEN 'PO' || lpad((i * 17 % 99999)::text, 5, '0') END,
       CASE WHEN i % 20 = 0 THEN 'draft' WHEN i % 97 = 0 THEN 'cancel' ELSE 'posted' END,
       (ARRAY['out_invoice','in_invoice','entry'])[j],
       CASE WHEN j = 3 THEN 'not_paid' WHEN i % 3 = 0 THEN 'not_paid' ELSE 'paid' END,
       '+++' || lpad((i % 1000)::text, 3, '0') || '/' || lpad((i % 10000)::text, 4, '0') || '/' || lpad((i % 100000)::text, 5, '0') || '+++',
       CASE WHEN j = 1 THEN 'S' || lpad(i::text, 5, '0') END,
       d, d, d + 30,
       amt, round(amt * 0.21, 2), round(amt * 1.21, 2),
       CASE WHEN i % 3 = 0 THEN round(amt * 1.21, 2) ELSE 0 END,
       CASE WHEN j = 2 THEN -round(amt * 1.21, 2) ELSE round(amt * 1.21, 2) END,
       CASE WHEN i % 7 = 0 THEN jsonb_build_object('en_US', '<p>Payment within 30 days. Thank you for your business.</p>') END,
       d + interval '9 hours', d + interval '10 hours'
  FROM (SELECT i, 1 + i % 3 AS j, (ARRAY['INV','BILL','MISC'])[1 + i % 3] AS jc,
               2020 + i % 5 AS y, 4 + (i * 7) % :partners AS p,
               date '2020-01-01' + (i % 1800) AS d,
               round((50 + (i * 7919) % 50000) / 10.0, 2) AS amt
          FROM generate_series(1, :moves) AS i) AS g;

INSERT INTO account_move_line (id, move_id, journal_id, company_id, account_id, currency_id, partner_id,
       create_uid, write_uid, move_name, parent_state, ref, name, display_type, date, sequence,
       quantity, price_unit, price_subtotal, price_total, debit, credit, balance,
       amount_currency, amount_residual, reconciled, create_date, write_date)
SELECT (m.id - 1) * :lines_per_move + k, m.id, m.journal_id, 1,
       CASE WHEN k = 1 THEN 1 WHEN k = :lines_per_move THEN 2 ELSE 3 + k % 4 END,
       1, m.partner_id, 2, 2, m.name, m.state, m.ref,
       CASE WHEN k = 1 THEN m.name
            WHEN k = :lines_per_move THEN 'Tax 21%'
            ELSE (ARRAY['Office chair','Desk combination','Large cabinet','Storage box','Customizable desk','Conference chair','Acoustic bloc screens'])[1 + (m.id + k) % 7] || ' [FURN_' || (1000 + (m.id * k) % 9000) || ']' END,
       CASE WHEN k = 1 THEN 'payment_term' WHEN k = :lines_per_move THEN 'tax' ELSE 'product' END,
       m.date, 10 * k,
       1 + k % 5, a, a * (1 + k % 5), a * (1 + k % 5) * 1.21,
       CASE WHEN k = 1 THEN a ELSE 0 END, CASE WHEN k = 1 THEN 0 ELSE a END,
       CASE WHEN k = 1 THEN a ELSE -a END, CASE WHEN k = 1 THEN a ELSE -a END,
       CASE WHEN k = 1 AND m.payment_state = 'not_paid' THEN a ELSE 0 END,
       k = 1 AND m.payment_state = 'paid',
       m.create_date, m.write_date
  FROM account_move m
 CROSS JOIN generate_series(1, :lines_per_move) AS k
 CROSS JOIN LATERAL (SELECT round(m.amount_untaxed / greatest(:lines_per_move - 1, 1), 2) AS a) AS x;

INSERT INTO ir_attachment (id, res_id, company_id, file_size, create_uid, write_uid, name,
       res_model, res_field, type, url, access_token, store_fname, checksum, mimetype,
       description, index_content, public, create_date, write_date)
SELECT i,
       CASE WHEN i % 3 = 0 THEN 4 + (i * 7) % :partners ELSE 1 + (i * 5) % greatest(:moves, 1) END,
       1, f.file_size, 2, 2,
       coalesce(f.name, 'link_' || i || '.url'),
       CASE WHEN i % 3 = 0 THEN 'res.partner' ELSE 'account.move' END,
       NULL,
       CASE WHEN f.n IS NULL THEN 'url' ELSE 'binary' END,
       CASE WHEN f.n IS NULL THEN 'https://docs.example.com/shared/' || md5(i::text) END,
       CASE WHEN i % 4 = 0 THEN md5(i::text || 'token') END,
       f.store_fname, f.checksum, coalesce(f.mimetype, 'text/html'),
       NULL,
       CASE WHEN f.mimetype = 'text/plain' THEN 'Scanned document ' || i || ' ' || md5(i::text) END,
       false,
       timestamp '2020-01-01' + i * interval '113 seconds',
       timestamp '2020-01-01' + i * interval '113 seconds'
  FROM generate_series(1, :attachments) AS i
  LEFT JOIN fixture_files f ON :files > 0 AND f.n = 1 + (i - 1) % greatest(:files, 1);
