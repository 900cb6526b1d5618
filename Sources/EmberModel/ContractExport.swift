// This module's public API is made of the model contract's types (LogMel, FrameBatch,
// Modality, FailureClass, ModalityCounts, …): importing the module brings them along.
@_exported import EmberContract
