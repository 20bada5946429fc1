"""milmer.runtime.eeg"""
