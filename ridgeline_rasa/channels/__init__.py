"""The channel connectors, named in credentials.yml as ``ridgeline_rasa.channels.<module>.<Class>``.

Each reads its secrets from Rasa's environment (``ridgeline_rasa.settings``) and stays off,
answering 404 on its webhook, until they are set: see docs/channels.md. Each puts the shared
gate (``gate.py``) around Rasa and asks for ``ridgeline_rasa.install.install(app)`` at start-up.
"""

from ridgeline_rasa.install import mask_logs

# Rasa imports this package when it reads credentials.yml, after it has set up its logging and
# before it serves a message: the earliest moment it runs project code, so personal data is
# masked in the log lines written before the server starts, too. install(app) masks again then.
mask_logs()
