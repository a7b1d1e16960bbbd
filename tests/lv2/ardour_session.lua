-- ardour_session.lua: run by ardour7-lua (headless, dummy backend) for
-- lv2_ardour.sh. Environment: SESS_DIR, SESS_NAME, STEP.
--   STEP=create: a new session with one mono track and cbrnn.lv2 on it,
--     learning on for 2 s of the dummy backend's input, then learning off
--     (the weights stop changing) and the session saved;
--   STEP=reload: the saved session loaded, run 1 s (learning stays off,
--     as saved), saved again under the snapshot name "reloaded".
local step = os.getenv("STEP")
local backend = AudioEngine:set_backend("None (Dummy)", "", "")
assert(backend, "no dummy backend")
local function find_cbrnn()
  for r in Session:get_routes():iter() do
    local i = 0
    while true do
      local p = r:nth_plugin(i)
      if p:isnil() then break end
      if p:display_name() == "cbrnn" then return p end
      i = i + 1
    end
  end
end
if step == "create" then
  assert(create_session(os.getenv("SESS_DIR"), os.getenv("SESS_NAME"), 48000), "create_session")
  local tl = Session:new_audio_track(1, 1, nil, 1, "voice", ARDOUR.PresentationInfo.max_order,
                                     ARDOUR.TrackMode.Normal, true)
  local proc = ARDOUR.LuaAPI.new_plugin(Session, "urn:cbrnn:lv2", ARDOUR.PluginType.LV2, "")
  assert(not proc:isnil(), "cbrnn.lv2 not found (LV2_PATH)")
  assert(tl:front():add_processor_by_index(proc, 0, nil, true), "add_processor")
  -- parameter 1: the second control input, learn (0 is enable)
  assert(ARDOUR.LuaAPI.set_processor_param(proc, 1, 1), "learn on")
  ARDOUR.LuaAPI.usleep(2000000)
  assert(ARDOUR.LuaAPI.set_processor_param(proc, 1, 0), "learn off")
  ARDOUR.LuaAPI.usleep(300000)
  Session:save_state("", false, false, false, false, false)
  print("ardour_session: created and saved")
else
  assert(load_session(os.getenv("SESS_DIR"), os.getenv("SESS_NAME")), "load_session")
  assert(find_cbrnn(), "the reloaded session has no cbrnn plugin")
  ARDOUR.LuaAPI.usleep(1000000)
  Session:save_state("reloaded", false, false, false, false, false)
  print("ardour_session: reloaded and saved as 'reloaded'")
end
close_session()
quit()
