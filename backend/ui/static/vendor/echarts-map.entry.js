// The part of Apache ECharts the model page's embedding map uses (backend/ui/static/map.js): scatter
// series on a grid, tooltip, legend, wheel zoom, the canvas renderer. No brush or toolbox: map.js draws
// the lasso itself on an overlay canvas (the brush redrew the whole chart on every mouse move).
import * as echarts from 'echarts/core';
import {ScatterChart} from 'echarts/charts';
import {DataZoomInsideComponent, GridComponent, LegendComponent, TooltipComponent} from 'echarts/components';
import {CanvasRenderer} from 'echarts/renderers';

echarts.use([ScatterChart, GridComponent, TooltipComponent, LegendComponent, DataZoomInsideComponent, CanvasRenderer]);
window.echarts = echarts;
