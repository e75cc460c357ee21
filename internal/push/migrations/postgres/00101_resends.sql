-- A push proved not applied (a refusal that applied nothing, or a look-up
-- that found nothing after an ambiguous answer) is sent again, within
-- bounds counted from its first send. first_sending_at is when the first
-- send began; send_after is the earliest time the next send may begin.
-- Pushes still on their way take their first send from their events.

-- +goose Up
ALTER TABLE pushes ADD COLUMN first_sending_at BIGINT;
ALTER TABLE pushes ADD COLUMN send_after BIGINT;
UPDATE pushes SET first_sending_at = (SELECT MIN(e.at) FROM push_events e WHERE e.push_id = pushes.id AND e.to_state = 'sending')
    WHERE state IN ('queued', 'sending', 'in_doubt');

-- +goose Down
ALTER TABLE pushes DROP COLUMN send_after;
ALTER TABLE pushes DROP COLUMN first_sending_at;
