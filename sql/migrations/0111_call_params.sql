-- 0111: tr_action_json takes the action's resolved params from its caller
-- (tr_action_call_params, joined into the calling query), instead of
-- looking them up per action.
DROP FUNCTION IF EXISTS tr_action_json(actions);
