-- Bulk data, session 1 of 2: partners and the chatter (mail_message).
-- psql variables: :partners :messages (row counts).
SET client_min_messages = warning;
SET synchronous_commit = off;

INSERT INTO res_partner (id, company_id, create_date, name, complete_name, parent_id,
       ref, lang, tz, vat, website, comment, type, street, zip, city, country_id,
       email, phone, mobile, is_company, active, customer_rank, supplier_rank,
       create_uid, write_uid, write_date)
SELECT i, 1, ts, nm,
       CASE WHEN i % 4 = 0 THEN pn || ', ' || nm ELSE nm END,
       CASE WHEN i % 4 = 0 THEN i - 1 END,
       CASE WHEN i % 3 = 0 THEN 'C' || lpad(i::text, 6, '0') END,
       (ARRAY['en_US','fr_BE','nl_BE','de_DE'])[1 + i % 4],
       (ARRAY['Europe/Brussels','Europe/Paris','UTC'])[1 + i % 3],
       CASE WHEN i % 4 = 3 THEN 'BE0' || (400000000 + i * 7919 % 99999999)::text END,
       CASE WHEN i % 4 = 3 THEN 'https://www.' || lower(replace(nm, ' ', '-')) || '.example.com' END,
       CASE WHEN i % 10 = 0 THEN '<p>Prefers e-mail. Account manager: ' || md5(i::text) || '. Visit on Tuesdays; parking at the back.</p>' END,
       CASE WHEN i % 8 = 0 THEN 'invoice' ELSE 'contact' END,
       (i * 13 % 400)::text || ' ' || (ARRAY['Rue de la Loi','Avenue Louise','Grote Markt','Kerkstraat','Main Street','Boulevard Anspach'])[1 + i % 6],
       (1000 + i * 37 % 8999)::text,
       (ARRAY['Brussels','Antwerp','Ghent','Liège','Namur','Leuven','Paris','Lille'])[1 + i % 8],
       1 + i % 3,
       lower(replace(nm, ' ', '.')) || '.' || i || '@example.com',
       '+32 2 ' || lpad((i * 7907 % 9999999)::text, 7, '0'),
       CASE WHEN i % 2 = 0 THEN '+32 47' || lpad((i * 6131 % 9999999)::text, 7, '0') END,
       i % 4 = 3, i % 50 <> 0, i % 3, CASE WHEN i % 7 = 0 THEN 1 ELSE 0 END,
       2, 2, ts + interval '3 days'
  FROM (SELECT i,
               timestamp '2019-01-01' + i * interval '97 seconds' AS ts,
               (ARRAY['Azure','Deco','Gemini','Lumber','Ready Mat','Wood Corner','Jackson','Brandon','Marc','Colleen','Addison','Floyd'])[1 + i % 12]
                 || ' ' || (ARRAY['Interior','Addict','Furniture','Group','Steeles','Demo','Olson','Freeman','Rivera','Bakers'])[1 + (i / 12) % 10]
                 || ' ' || i AS nm,
               (ARRAY['Azure','Deco','Gemini','Lumber','Ready Mat','Wood Corner','Jackson','Brandon','Marc','Colleen','Addison','Floyd'])[1 + (i - 1) % 12]
                 || ' ' || (ARRAY['Interior','Addict','Furniture','Group','Steeles','Demo','Olson','Freeman','Rivera','Bakers'])[1 + ((i - 1) / 12) % 10]
                 || ' ' || (i - 1) AS pn
          FROM generate_series(4, :partners + 3) AS i) AS g;

INSERT INTO mail_message (id, parent_id, res_id, record_company_id, subtype_id, author_id,
       mail_server_id, create_uid, write_uid, subject, model, record_name, message_type,
       email_from, message_id, reply_to, body, is_internal, date, create_date, write_date)
SELECT i,
       CASE WHEN i % 3 = 0 THEN i - 1 END,
       CASE WHEN i % 2 = 0 THEN 4 + (i * 7) % :partners ELSE 1 + (i * 11) % greatest(:partners, 1) END,
       1,
       1 + i % 3,
       4 + (i * 13) % :partners,
       CASE WHEN i % 5 = 0 THEN 1 END,
       2, 2,
       CASE WHEN i % 4 = 0 THEN 'Re: ' || (ARRAY['Your order','Invoice reminder','Quotation','Delivery planning','Meeting notes'])[1 + i % 5] || ' #' || (i / 4) END,
       CASE WHEN i % 2 = 0 THEN 'res.partner' ELSE 'account.move' END,
       'Record ' || (i / 2),
       (ARRAY['comment','notification','email','comment','email'])[1 + i % 5],
       '"Contact ' || (i % 997) || '" <contact' || (i % 997) || '@example.com>',
       '<' || md5(i::text) || '.' || (1700000000 + i) || '-openerp-' || i || '@example.com>',
       CASE WHEN i % 5 = 2 THEN 'catchall@example.com' END,
       '<p>' || (ARRAY['Hello','Dear customer','Hi team','Good morning','Thank you'])[1 + i % 5] || ',</p><p>'
         || substr('Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. '
                || 'Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. '
                || 'Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. '
                || 'Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. '
                || 'Please find attached the documents discussed during our last call; the delivery is planned for next week. ',
                1 + (i * 37) % 200, 120 + (i * 53) % 380)
         || '</p><p>Reference: ' || md5((i * 31)::text) || '</p>'
         || CASE WHEN i % 6 = 0 THEN '<p>-- <br/>' || repeat('Sent from the customer portal. ', 1 + i % 4) || '</p>' ELSE '' END,
       i % 5 = 1,
       ts, ts, ts
  FROM (SELECT i, timestamp '2020-01-01' + i * interval '37 seconds' AS ts
          FROM generate_series(1, :messages) AS i) AS g;
