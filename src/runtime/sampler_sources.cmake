# Token sampling (the llama.cpp sampler chain) and stop strings. Included from src/CMakeLists.txt.
target_sources(hymoe PRIVATE runtime/sampler.cpp)
