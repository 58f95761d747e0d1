qkv_lab(11_kv_cache "greedy decoding with a key/value cache"
  MUTANTS attend_before_append "append the new position's key and value to the cache before attending"
          no_pos_offset "pos_emb row t")
