# Expert offloading: the expert store, the cache and its policies, the loader and prefetcher, the
# RAM tier, routing traces and the offline cache simulator.
# Included from src/CMakeLists.txt; paths are relative to src/.
target_sources(hymoe PRIVATE
    offload/cache_policy.cpp
    offload/cost_model.cpp
    offload/expert_cache.cpp
    offload/expert_loader.cpp
    offload/expert_store.cpp
    offload/prefetcher.cpp
    offload/moe_scheduler.cpp
    offload/ram_tier.cpp
    offload/routing_trace.cpp
    offload/simulate.cpp)
