-- Exports read an account's rows in date order (the date a row is booked at, else made or
-- valued on), then first seen, then stable id. With this index the database walks them in
-- that order instead of sorting each account's rows, bank JSON included, before the first
-- one is written: an export of a large store starts at once and its memory stays flat.
CREATE INDEX transactions_export_order ON transactions
    (account_id, (COALESCE(booking_date, transaction_date, value_date)), first_seen, stable_id);
