"""TorchServe handlers of the review-analysis bundle: one module per task on a shared base."""
