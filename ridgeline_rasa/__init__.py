"""The Rasa extension: what the assistant adds to Rasa Open Source 3.6, as one installed package.

Installed into Rasa's virtualenv (``.venv-rasa``, editable, by ``scripts/setup.sh``; into the
image by ``docker/rasa.Dockerfile``) from ``packaging/ridgeline-rasa/``, together with the ground
floor it imports (``ridgeline``). Rasa loads its classes by dotted path from config.yml,
credentials.yml and endpoints.yml:

- ``ridgeline_rasa.channels``: the channel connectors (credentials.yml): ``rest.RestInput``,
  ``socketio.SocketIOInput``, ``slack.SlackInput``, ``telegram.TelegramInput``, and the gate
  every channel shares (``channels.gate``: text cleaned and cut, rate limit, never a silent turn);
- ``ridgeline_rasa.faq_gate.FaqConfidenceGate``: the NLU component (config.yml) that sends unsure
  FAQ answers to the LLM;
- ``ridgeline_rasa.tracker_store.SQLiteTrackerStore``: ``make run``'s tracker store (endpoints.yml);
- ``ridgeline_rasa.api_guard``: clear 400s for malformed bodies sent to Rasa's HTTP API;
- ``ridgeline_rasa.speedups``: Rasa's action-response check and TensorFlow predict path, faster;
- ``ridgeline_rasa.install``: ``install(app)``, what is installed into the server at start-up;
- ``ridgeline_rasa.settings``: every environment variable the extension reads, read once;
- ``ridgeline_rasa.launch``: how Rasa is launched (environment, ``rasa run``/``train``/``shell``
  arguments), the one definition ``stack``, the scripts and the Dockerfile share. It, this
  module and ``settings`` import no Rasa, so the main virtualenv (Python 3.11+) uses them too.

The old dotted paths ``connectors.*`` and ``components.*`` (rasa_project/) still work for one
release, with a DeprecationWarning naming the new path.
"""
