"""milmer.runtime.demo"""
