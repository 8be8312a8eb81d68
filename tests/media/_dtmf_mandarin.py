"""Mandarin speech for the DTMF talk-off test, synthesized with espeak-ng.

The text is written for this test (IVR prompts, numbers, dates, plain narrative) and read
with the ``cmn-latn-pinyin`` voice, which reads Chinese characters as Mandarin (the plain
``cmn`` voice spells them as English letters). It is spoken by two voice variants at three
pitches, about four minutes in all, then converted to 8 kHz 16-bit mono by sox.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TEXT = """
您好，欢迎致电客户服务中心。查询账户余额请按一，办理缴费业务请按二，
挂失和补办请按三，人工服务请按零，重听请按星号键。
您的来电对我们非常重要，请不要挂机，我们将尽快为您转接。
您的保单已经生效，保单号码是二零二四零六一八三七九五。
本月账单金额为三百八十六元四角，最后缴费日期为七月十五日。
请在听到提示音后说出您的姓名和联系电话，说完请按井号键结束。
对不起，您的输入有误，请重新输入六位数字密码。
今天是二零二四年六月十八日星期二，北京地区晴转多云，最高气温三十二度，
最低气温二十一度，南风三到四级，空气质量良。
明天上午有雷阵雨，请市民出门携带雨具，注意交通安全。
各位旅客请注意，开往上海虹桥的高铁列车即将进站，请在黄色安全线以外排队候车。
本次列车途经济南西、南京南，终点站上海虹桥，预计晚点十五分钟。
小明每天早上六点半起床，先去公园跑步，然后回家吃早饭。
他的妈妈做了热腾腾的包子和小米粥，还有一盘炒青菜。
吃完饭以后，他骑自行车去学校，路上要经过一座小桥和一片稻田。
老师说，学习就像爬山，一步一步往上走，总会看到山顶的风景。
我们公司成立于一九九八年，主要生产电子元件和通信设备，
产品销往全国三十多个省市和海外五十多个国家。
如需了解更多信息，请访问我们的网站，或者拨打免费热线四零零八八八六六六六。
感谢您的耐心等待，坐席人员正在通话中，请稍候。
为了提高服务质量，您的通话可能会被录音。
请对本次服务进行评价，满意请按一，一般请按二，不满意请按三。
春天来了，河边的柳树发出了嫩绿的新芽，桃花和杏花也都开了。
孩子们在草地上放风筝，老人们坐在长椅上聊天晒太阳。
傍晚时分，夕阳把天空染成了金黄色，远处传来了悠扬的笛声。
会议将于下午两点在三楼第一会议室召开，请各部门负责人准时参加。
会议议题包括第三季度销售总结、第四季度工作计划以及新员工培训安排。
您的快递已到达小区门口的快递柜，取件码是八七五三二一，请在二十四小时内取件。
您申请的贷款已审批通过，金额为五万元，期限十二个月，月利率百分之零点四五。
温馨提示，请保管好您的银行卡和密码，不要向任何人透露验证码。
"""

VARIANTS = ("cmn-latn-pinyin", "cmn-latn-pinyin+f3")
PITCHES = (30, 50, 75)


def available() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def synthesize(directory: Path) -> list[Path]:
    """WAV files (8 kHz, 16-bit, mono) of TEXT in every variant and pitch."""
    out = []
    for variant in VARIANTS:
        for pitch in PITCHES:
            raw = directory / f"cmn-{variant}-{pitch}-22k.wav"
            wav = directory / f"cmn-{variant}-{pitch}.wav"
            subprocess.run(
                ["espeak-ng", "-v", variant, "-p", str(pitch), "-w", str(raw), TEXT],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                ["sox", str(raw), "-r", "8000", "-b", "16", "-c", "1", str(wav)],
                check=True,
                capture_output=True,
            )
            out.append(wav)
    return out
