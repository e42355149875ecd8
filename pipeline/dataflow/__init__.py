"""The Ray Data job: CPU stages, the GPU stage, model runtime, the sink and the output schemas."""
