"""The project's custom NLU components, named in config.yml as components.<module>.<Class>.

Rasa imports them the way it imports connectors/: from its working directory, rasa_project/
(`rasa train/test/shell/run` there, `make run`; the Docker image copies this folder next to
connectors/)."""
