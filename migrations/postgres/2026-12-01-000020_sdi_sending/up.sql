-- Sending the documents to the SdI.

-- The brand's PEC mailbox: the sender of its files on the PEC channel, where the SdI's
-- receipts come back. Empty until the seeds fill it in.
ALTER TABLE brands ADD COLUMN sdi_pec_address TEXT NOT NULL DEFAULT '';

-- Failed attempts over the file's whole life (attempts starts again from zero when the
-- back-office retries a dead file): the metrics count failures from it. The channel
-- column now also names the channel of a failed attempt.
ALTER TABLE sdi_transmissions ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
