"""Core library of the fraud-detection pipeline: pure, typed functions with no file paths."""
