"""Model code run by the Transform and Trainer components."""
