"""TorchServe handlers of the review-analysis bundle: one module per task on a shared base.

TorchServe's rule: the module named by ``--handler`` must define exactly one class (it
instantiates the only class whose ``__module__`` is that module, and refuses a module with
two), so each task module defines its handler class and nothing else; helper classes live in
the modules below. build_mar.sh copies every module flat into the archive's ``handlers/``
package, so they import only each other, the standard library and the serving dependencies.

* ``base``: the contract. RequestHandler (parse, admit and cost, batch, error slots, metrics)
  and TextClassifierHandler (one model; a task's split / pairs / fold hooks).
* ``backends``: torch, ONNX, TF-IDF and BiLSTM models behind one interface; tokens,
  micro-batches.
* ``sentiment``, ``toxicity``, ``absa``, ``language``: tasks on one model each.
* ``review``: sentiment and toxicity handlers as parts of one handler, in one worker.
* ``router``, ``routing``: the A/B router, a handler that forwards instead of inferring.
* ``inputs``: request bodies to texts, and the 4xx errors of one request.
* ``metrics``: the bundle's Prometheus metrics (each declared in metrics.yaml).
* ``auxiliary``, ``sentences``: ABSA's auxiliary sentences; Punkt sentence splitting.
* ``aggregation``: how a review's sentence scores fold into its sentiment.
* ``linear_model``, ``bilstm_model``, ``onnx_model``: the TF-IDF model, the converted Jigsaw
  BiLSTM and the ONNX Runtime classifier.
* ``server_config``: the TorchServe settings a worker reads from the frontend's properties.
"""
