"""Channel connectors of the assistant, loaded by Rasa from credentials.yml.

Rasa imports them by module path (``connectors.slack.SlackInput``) from its working
directory, rasa_project/. Each reads its secrets from the environment and stays off,
answering 404 on its webhook, until they are set: see docs/channels.md.
"""

from ridgeline.privacy import install_log_masking

# Rasa imports this package when it reads credentials.yml, after it has set up its logging and
# before it serves a message: the one place Rasa Open Source lets the project mask personal
# data (emails, phone numbers, order ids) in every log line. `ridgeline` is the repo's ground
# floor (on PYTHONPATH under `make run`, copied next to the connectors in the image).
install_log_masking()
