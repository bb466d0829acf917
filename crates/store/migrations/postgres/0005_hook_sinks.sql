-- A consent event goes to the hook command and then to the hook URL. When the command has
-- run and the URL refused, the retry must not run the command again: this records that it
-- has run.
ALTER TABLE hook_events ADD COLUMN command_done_at TIMESTAMPTZ;
