-- A product can be temporarily unavailable ("momentaneamente non disponibile"): the
-- notice the shop shows beside it says why or until when. NULL: available. Unlike
-- `active = false` (off sale, hidden), the product stays listed, and is not sold.
ALTER TABLE products ADD COLUMN unavailable_notice TEXT;
