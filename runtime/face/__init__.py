"""milmer.runtime.face"""
