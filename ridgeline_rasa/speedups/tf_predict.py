"""Rasa's TensorFlow models predict through their compiled function directly.

Every turn runs DIET, the ResponseSelector and TED (twice for a scripted reply). Rasa 3.6
calls each through ``tf.function`` with a fixed input signature, and that call first works
out again which compiled function the inputs belong to (``_maybe_define_function``,
``canonicalize_function_inputs``, ``cast_inputs``): on the development machine about a sixth
of a scripted turn, for an answer that cannot change, since the signature is fixed.

``install()`` keeps that answer: after a model's first prediction (Rasa's own code builds the
function), later predictions convert the batch to tensors of the signature's dtypes and run
the one concrete function. A batch that does not fit the signature (another rank, dtype or
feature size) goes through Rasa's own path, so it fails, if at all, as before. The outputs are
the same tensors, post-processed as Rasa does. Installed when the channels start
(``ridgeline_rasa.install``); ``uninstall()`` restores Rasa's method.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

_ORIGINAL = "_ridgeline_original_rasa_predict"


class _Compiled(NamedTuple):
    function: Any  # tf ConcreteFunction
    specs: List[Any]  # tf.TensorSpec, one per batch element


def _fits(batch: Sequence[Any], specs: Sequence[Any]) -> bool:
    if len(batch) != len(specs):
        return False
    for array, spec in zip(batch, specs):
        shape = getattr(array, "shape", None)
        if shape is None or len(shape) != spec.shape.rank or array.dtype != spec.dtype.as_numpy_dtype:
            return False
        if len(shape) > 1 and shape[-1] != spec.shape[-1]:
            return False
    return True


def install() -> None:
    """Idempotent: a second call leaves the first one in place."""
    import tensorflow as tf
    from rasa.shared.constants import DIAGNOSTIC_DATA
    from rasa.utils.tensorflow.models import RasaModel
    from keras.utils import tf_utils

    if hasattr(RasaModel, _ORIGINAL):
        return
    original: Callable[[Any, Any], Dict[str, Any]] = RasaModel._rasa_predict
    compiled: "weakref.WeakKeyDictionary[Any, _Compiled]" = weakref.WeakKeyDictionary()

    def compile_once(model: Any) -> Optional[_Compiled]:
        step = getattr(model, "_tf_predict_step", None)
        if step is None or getattr(model, "_run_eagerly", False):
            return None
        function = step.get_concrete_function()
        (specs,), _ = function.structured_input_signature
        entry = _Compiled(function, list(specs))
        compiled[model] = entry
        return entry

    @functools.wraps(original)
    def rasa_predict(self: Any, batch_in: Any) -> Dict[str, Any]:
        entry = compiled.get(self)
        if entry is None or self._run_eagerly or not _fits(batch_in, entry.specs):
            outputs = original(self, batch_in)
            if entry is None:
                compile_once(self)
            return outputs
        self._training = False
        tensors = [tf.convert_to_tensor(a, dtype=s.dtype) for a, s in zip(batch_in, entry.specs)]
        raw = entry.function._call_flat(tensors, entry.function.captured_inputs)
        outputs = tf_utils.sync_to_numpy_or_python_type(raw)
        if DIAGNOSTIC_DATA in outputs:
            outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
        return outputs

    setattr(RasaModel, _ORIGINAL, original)
    RasaModel._rasa_predict = rasa_predict


def uninstall() -> None:
    from rasa.utils.tensorflow.models import RasaModel

    original = RasaModel.__dict__.get(_ORIGINAL)
    if original is not None:
        RasaModel._rasa_predict = original
        delattr(RasaModel, _ORIGINAL)
