-- 0091: identical action params stored once (issue 15). A batch whose
-- thousand tasks call the same webhook stored its params a thousand times;
-- they now live once in action_params, keyed by the SHA-256 of their JSON
-- text (jsonb's text is canonical: equal params, equal key; SHA-256, not
-- md5, so that no task can make its params collide with another's), and
-- each action row names them by params_id. params stays for rows written
-- before (and for actions registered by an on_start answer, written one at
-- a time); tr_action_own_params reads either.

CREATE TABLE action_params (
    id     bytea PRIMARY KEY,
    params jsonb NOT NULL
);

ALTER TABLE actions ALTER COLUMN params DROP NOT NULL,
                    ADD COLUMN params_id bytea,
                    ADD CONSTRAINT actions_params_given
                        CHECK (params IS NOT NULL OR params_id IS NOT NULL);
