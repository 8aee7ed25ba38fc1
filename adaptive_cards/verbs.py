"""Card action verbs (the contract between cards and the bot's handler)."""

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

ALL = {
    PAGE_NEXT, PAGE_BACK, PAGE_PAUSE, CASE_NEW, CASE_OPEN, CASE_CONTINUE_ANYWAY, CASE_LIST,
    REVIEW_EDIT, REVIEW_SHOW, REVIEW_SUBMIT, HELP,
}

# Prefix of input ids on form pages, so an item id can never collide with action data keys.
INPUT_PREFIX = "in_"
