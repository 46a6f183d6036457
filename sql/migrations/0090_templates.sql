-- 0090: rule and action templates (API.md Part 2, "Rule and action
-- templates (F2, F3)"). A task names a template with {"ref": "<name>"}:
-- a rule reference stays in tasks.rules as {"ref": name} and is read through
-- rule_templates at every rule check (tr_rules_resolved), so a new
-- max_concurrency applies at once; an action reference is an actions row
-- with template set and params holding only the keys given beside the ref,
-- merged over the template's when the call is made (tr_action_params).

CREATE TABLE rule_templates (
    name       text PRIMARY KEY,
    rule       jsonb NOT NULL,        -- normalized rule; matcher.kind absent: the task's kind
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE action_templates (
    name       text PRIMARY KEY,
    kind       text NOT NULL DEFAULT 'Webhook',
    params     jsonb NOT NULL,        -- normalized, complete (url required)
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Which tasks name which rule template: tasks_using, the 409 of DELETE and
-- the lanes to list again when a template's matcher changes. Only tasks
-- with references have rows.
CREATE TABLE task_rule_refs (
    name    text NOT NULL,
    task_id uuid NOT NULL,
    PRIMARY KEY (name, task_id)
);
CREATE INDEX task_rule_refs_task_idx ON task_rule_refs (task_id);

ALTER TABLE actions ADD COLUMN template text;  -- an action template's name, or NULL
CREATE INDEX actions_template_idx ON actions (template, task_id) WHERE template IS NOT NULL;

-- The audit trail of the templates: every creation, replacement and
-- deletion with its actor and the definition it left.
CREATE TABLE template_events (
    id     bigserial NOT NULL,
    kind   text NOT NULL CHECK (kind IN ('rule', 'action')),
    name   text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    event  text NOT NULL CHECK (event IN ('created', 'replaced', 'deleted')),
    actor  text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX template_events_name_idx ON template_events (kind, name, id);
