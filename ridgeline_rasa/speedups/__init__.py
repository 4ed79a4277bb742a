"""Three of Rasa's per-turn costs removed, same results: installed by ``ridgeline_rasa.install``.

- ``action_response_check``: action server responses checked with a JSON schema compiled once;
- ``tf_predict``: Rasa's TensorFlow models predict through their compiled function directly;
- ``regex_features``: the regex featurizer marks tokens in linear time, not tokens x matches.
"""
