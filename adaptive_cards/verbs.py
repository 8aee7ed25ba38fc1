"""Card action verbs (the contract between cards and the bot's handler)."""

# --- the 1:1 case flow -----------------------------------------------------------------------
PAGE_NEXT = "side.naeste"
PAGE_BACK = "side.tilbage"
PAGE_PAUSE = "side.pause"
CASE_NEW = "sag.ny"
CASE_OPEN = "sag.aabn"
CASE_CONTINUE_ANYWAY = "sag.fortsaet_alligevel"
CASE_LIST = "sager.liste"
REVIEW_EDIT = "gennemsyn.ret"
REVIEW_SHOW = "gennemsyn.vis"
REVIEW_SUBMIT = "gennemsyn.indsend"
HELP = "hjaelp"
# co-authors (data: case; add: input "personer"; remove: user)
COAUTHORS_SHOW = "sag.medforfattere"
COAUTHORS_ADD = "sag.medforfatter.tilfoej"
COAUTHORS_REMOVE = "sag.medforfatter.fjern"

CASE_FLOW = {
    PAGE_NEXT, PAGE_BACK, PAGE_PAUSE, CASE_NEW, CASE_OPEN, CASE_CONTINUE_ANYWAY, CASE_LIST,
    REVIEW_EDIT, REVIEW_SHOW, REVIEW_SUBMIT, HELP, COAUTHORS_SHOW, COAUTHORS_ADD, COAUTHORS_REMOVE,
}

# --- the case card in a forum channel (data: case, forum) ------------------------------------
FORUM_VIEW = "forum.vis"  # also the card's refresh action: the user-specific view
FORUM_ANSWERS = "forum.svar"  # data + part
FORUM_HISTORY = "forum.historik"  # data + part
FORUM_DECIDE_START = "forum.beslut.start"  # opens the decision form (secretariat only)
FORUM_DECIDE = "forum.beslut"  # data + rev; inputs: udfald, begrundelse, q1..q6
FORUM_PLAN_START = "forum.plan.start"
FORUM_PLAN = "forum.plan"  # data + rev; inputs: ansvarlige, evalueringsdato, note
FORUM_EVALUATE_START = "forum.evaluer.start"
FORUM_EVALUATE = "forum.evaluer"  # data + rev; inputs: evaluering

FORUM = {
    FORUM_VIEW, FORUM_ANSWERS, FORUM_HISTORY, FORUM_DECIDE_START, FORUM_DECIDE, FORUM_PLAN_START, FORUM_PLAN,
    FORUM_EVALUATE_START, FORUM_EVALUATE,
}

# --- channel set-up (admins only; data: channel) ----------------------------------------------
SETUP_SHOW = "opsaetning.vis"
SETUP_BIND = "opsaetning.knyt"  # input: forum
SETUP_UNBIND = "opsaetning.fjern_forum"  # data: forum
SETUP_MEMBER_ADD = "opsaetning.sekretariat.tilfoej"  # data: forum; input: personer_{forum}
SETUP_MEMBER_REMOVE = "opsaetning.sekretariat.fjern"  # data: forum, user
SETUP_ADMIN_ADD = "opsaetning.admin.tilfoej"  # input: admins
SETUP_ADMIN_REMOVE = "opsaetning.admin.fjern"  # data: user

SETUP = {
    SETUP_SHOW, SETUP_BIND, SETUP_UNBIND, SETUP_MEMBER_ADD, SETUP_MEMBER_REMOVE, SETUP_ADMIN_ADD, SETUP_ADMIN_REMOVE,
}

# --- deliveries that failed (admins only; retry data: item) ------------------------------------
DELIVERIES_SHOW = "leveringer.vis"
DELIVERIES_RETRY = "leveringer.proev_igen"

DELIVERIES = {DELIVERIES_SHOW, DELIVERIES_RETRY}

ALL = CASE_FLOW | FORUM | SETUP | DELIVERIES

# Prefix of input ids on form pages, so an item id can never collide with action data keys.
INPUT_PREFIX = "in_"
