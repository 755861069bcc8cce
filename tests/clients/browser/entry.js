// The official browser trackers, bundled as they would be in a shop's build, exposed to the test page.
import * as snowplow from "@snowplow/browser-tracker";
import * as ecommerce from "@snowplow/browser-plugin-snowplow-ecommerce";
import { AnalyticsBrowser } from "@segment/analytics-next";

window.clients = { snowplow, ecommerce, AnalyticsBrowser };
