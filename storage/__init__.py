"""Storage: models, repositories, migrations. Importing the package registers every table on
``storage.models.Base.metadata`` (the outbox tables live in ``storage.outbox``, the team registry in
``storage.teams``, forums in ``storage.forums``)."""

from storage import forums as forums  # noqa: F401  (registers the forum tables on Base.metadata)
from storage import outbox as outbox  # noqa: F401  (registers the outbox tables on Base.metadata)
from storage import teams as teams  # noqa: F401  (registers the team tables on Base.metadata)
