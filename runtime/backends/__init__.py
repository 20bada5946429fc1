"""milmer.runtime.backends"""
