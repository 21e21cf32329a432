"""The CUDA back end: source generated per model (:mod:`.codegen`), run by PyCUDA (:mod:`.runner`).

``generate(model)`` needs nothing but Python; ``compile_cuda`` needs PyCUDA and a GPU, and
``gpu_available()`` says (without raising) whether both are there.
"""

from .codegen import CudaSource, generate

__all__ = ["CudaSource", "generate"]
