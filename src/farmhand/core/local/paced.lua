-- wrk's script for a paced load (farmhand.core.local.load): each connection waits the milliseconds given
-- after `--` before it sends its next request.
local pause = 0
function init(args) pause = tonumber(args[1]) end
function delay() return pause end
