"""Channel connectors of the assistant, loaded by Rasa from credentials.yml.

Rasa imports them by module path (``connectors.slack.SlackInput``) from its working
directory, rasa_project/. Each reads its secrets from the environment and stays off,
answering 404 on its webhook, until they are set: see docs/channels.md.
"""
